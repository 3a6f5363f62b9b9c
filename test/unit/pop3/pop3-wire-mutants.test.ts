import { EventEmitter } from "node:events";
import type { Socket } from "node:net";
import { afterEach, describe, expect, it, vi } from "vitest";
import { Pop3Wire } from "../../../shared/adapters/pop3/pop3-wire";
import {
  ConnectionClosedError,
  MailboxBusyError,
  ProtocolError,
  TimeoutError,
} from "../../../shared/core/errors";

/** A socket stand-in: records what the wire does to it; the test plays the server's events. */
class FakeSocket extends EventEmitter {
  readonly written: Buffer[] = [];
  destroyed = 0;
  pauses = 0;
  resumes = 0;
  write(data: string, encoding: BufferEncoding): boolean {
    this.written.push(Buffer.from(data, encoding));
    return true;
  }
  destroy(): void {
    this.destroyed++;
  }
  pause(): void {
    this.pauses++;
  }
  resume(): void {
    this.resumes++;
  }
  serverSends(text: string): void {
    this.emit("data", Buffer.from(text, "latin1"));
  }
}

const LIMITS = { commandTimeoutMs: 50, maxLineBytes: 10 };
/** Room for a whole unprompted reply line. */
const ROOMY = { commandTimeoutMs: 50, maxLineBytes: 100 };

function wireOn(initial?: string, limits = LIMITS): { socket: FakeSocket; wire: Pop3Wire } {
  const socket = new FakeSocket();
  const wire =
    initial === undefined
      ? new Pop3Wire(socket as unknown as Socket, limits)
      : new Pop3Wire(socket as unknown as Socket, limits, Buffer.from(initial, "latin1"));
  return { socket, wire };
}

const text = (line: Buffer) => line.toString("latin1");

afterEach(() => {
  vi.useRealTimers();
});

describe("Pop3Wire lines (mutation survivors)", () => {
  it("writes a command as latin1 with CRLF", () => {
    // Prepare
    const { socket, wire } = wireOn();
    // Act
    wire.send("USER \xe9");
    // Assess
    expect(socket.written).toEqual([Buffer.from([0x55, 0x53, 0x45, 0x52, 0x20, 0xe9, 0x0d, 0x0a])]);
  });

  it("strips CRLF or a bare LF, and keeps the bytes after the line for the next read", async () => {
    // Prepare
    const { socket, wire } = wireOn("+OK first\r\n");
    // Act
    const first = await wire.readLine();
    const second = wire.readLine();
    socket.serverSends("+OK\n-ERR x\r\n");
    const secondLine = await second;
    const third = await wire.readLine();
    // Assess
    expect([text(first), text(secondLine), text(third)]).toEqual(["+OK first", "+OK", "-ERR x"]);
  });

  it("accepts a line of exactly maxLineBytes, with or without its line feed yet", async () => {
    // Prepare
    const { socket, wire } = wireOn();
    // Act
    const whole = wire.readLine();
    socket.serverSends("0123456789\n");
    const wholeLine = await whole;
    const split = wire.readLine();
    socket.serverSends("abcdefghij");
    socket.serverSends("\n");
    const splitLine = await split;
    // Assess
    expect([text(wholeLine), text(splitLine)]).toEqual(["0123456789", "abcdefghij"]);
    expect(wire.failure).toBeUndefined();
  });

  it("fails on a line longer than maxLineBytes, whether its line feed came or not", async () => {
    // Prepare
    const withFeed = wireOn();
    const withoutFeed = wireOn();
    // Act
    const long = withFeed.wire.readLine();
    withFeed.socket.serverSends("0123456789A\n");
    const endless = withoutFeed.wire.readLine();
    withoutFeed.socket.serverSends("0123456789A");
    // Assess
    for (const [reading, { socket }] of [
      [long, withFeed],
      [endless, withoutFeed],
    ] as const) {
      await expect(reading).rejects.toThrow(
        new ProtocolError("pop3", "The server sent a line longer than 10 bytes"),
      );
      await expect(reading).rejects.toMatchObject({ service: "pop3" });
      expect(socket.destroyed).toBe(1);
    }
  });
});

describe("Pop3Wire failures (mutation survivors)", () => {
  it("keeps the first failure, destroys the socket once, and fails every later call with it", async () => {
    // Prepare
    const { socket, wire } = wireOn();
    const first = new ConnectionClosedError("pop3", "first");
    // Act
    const before = wire.failure;
    wire.fail(first);
    wire.fail(new ConnectionClosedError("pop3", "second"));
    // Assess
    expect(before).toBeUndefined();
    expect(wire.failure).toBe(first);
    expect(socket.destroyed).toBe(1);
    expect(() => wire.send("NOOP")).toThrow(first);
    expect(() => wire.detach()).toThrow(first);
    await expect(wire.readLine()).rejects.toBe(first);
  });

  it("names the socket's error code when the connection closes, and keeps the error as cause", async () => {
    // Prepare
    const withCode = wireOn();
    const withoutCode = wireOn();
    const reset = Object.assign(new Error("read ECONNRESET"), { code: "ECONNRESET" });
    const plain = new Error("gone");
    // Act
    const a = withCode.wire.readLine();
    withCode.socket.emit("error", reset);
    withCode.socket.emit("close");
    const b = withoutCode.wire.readLine();
    withoutCode.socket.emit("error", plain);
    withoutCode.socket.emit("close");
    // Assess
    await expect(a).rejects.toThrow("The POP3 connection closed (ECONNRESET)");
    await expect(a).rejects.toMatchObject({ service: "pop3", cause: reset });
    await expect(b).rejects.toThrow(/^The POP3 connection closed$/);
    await expect(b).rejects.toMatchObject({ cause: plain });
  });

  it("reports a plain close of an idle wire as a closed connection", () => {
    // Prepare
    const { socket, wire } = wireOn();
    // Act
    socket.emit("close");
    // Assess
    expect(wire.failure).toBeInstanceOf(ConnectionClosedError);
    expect(wire.failure?.message).toBe("The POP3 connection closed");
  });
});

describe("Pop3Wire unsolicited bytes (mutation survivors)", () => {
  it("refuses to send after the server spoke unprompted, quoting its first line", () => {
    // Prepare
    const { socket, wire } = wireOn();
    socket.serverSends("hello\r\n");
    // Act
    const act = () => wire.send("NOOP");
    // Assess
    expect(act).toThrow(ProtocolError);
    expect(wire.failure?.message).toBe('The server sent data nobody asked for: "hello"');
    expect(wire.failure).toMatchObject({ service: "pop3" });
    expect(socket.written).toEqual([]);
  });

  it("holds up to maxLineBytes unprompted bytes and fails past them", () => {
    // Prepare
    const held = wireOn();
    const over = wireOn();
    // Act
    held.socket.serverSends("0123456789");
    over.socket.serverSends("0123456789A");
    // Assess
    expect(held.wire.failure).toBeUndefined();
    expect(over.wire.failure).toBeInstanceOf(ProtocolError);
  });

  it("reads an unprompted -ERR line: busy codes as busy, others as the server closing", () => {
    // Prepare
    const cases = [
      "-ERR [IN-USE] x\r\nY",
      "-ERR [LOGIN-DELAY] x\r\n",
      "-ERR [SYS/TEMP] bye\r\n",
      "-ERR\r\n",
      "-ERR a\rb\r\n",
      "-ERRX\r\n",
      "-ERR going away",
    ];
    const failures = cases.map((sent) => {
      const { socket, wire } = wireOn(undefined, ROOMY);
      socket.serverSends(sent);
      socket.emit("close");
      return wire.failure;
    });
    // Assess
    expect(failures.map((f) => [f?.constructor.name, f?.message])).toEqual([
      [MailboxBusyError.name, "POP3 (unsolicited): -ERR [IN-USE] x"],
      [MailboxBusyError.name, "POP3 (unsolicited): -ERR [LOGIN-DELAY] x"],
      [ConnectionClosedError.name, 'The server sent "-ERR [SYS/TEMP] bye" unprompted and is closing'],
      [ConnectionClosedError.name, 'The server sent "-ERR" unprompted and is closing'],
      [ConnectionClosedError.name, 'The server sent "-ERR a?b" unprompted and is closing'],
      [ProtocolError.name, 'The server sent data nobody asked for: "-ERRX"'],
      [ConnectionClosedError.name, 'The server sent "-ERR going away" unprompted and is closing'],
    ]);
    expect(failures[2]).toMatchObject({ service: "pop3" });
  });

  it("refuses STLS when bytes came before the handshake, and detaches cleanly otherwise", () => {
    // Prepare
    const injected = wireOn(undefined, ROOMY);
    injected.socket.serverSends("+OK injected\r\n");
    const clean = wireOn();
    // Act
    const act = () => injected.wire.detach();
    const detached = clean.wire.detach();
    // Assess
    expect(act).toThrow("The server sent data after STLS +OK before the TLS handshake");
    expect(injected.wire.failure).toMatchObject({ service: "pop3", code: "PROTOCOL_VIOLATION" });
    expect(detached).toBe(clean.socket);
    expect(["data", "error", "close"].map((event) => clean.socket.listenerCount(event))).toEqual([0, 0, 0]);
  });
});

describe("Pop3Wire bodies and flow control (mutation survivors)", () => {
  it("starts unpaused; pauses and resumes the socket once each, and not after a failure", () => {
    // Prepare
    const { socket, wire } = wireOn();
    const failed = wireOn();
    // Act
    const initially = wire.paused;
    wire.resume();
    wire.pause();
    wire.pause();
    wire.resume();
    wire.resume();
    failed.wire.pause();
    failed.wire.fail(new ConnectionClosedError("pop3", "x"));
    failed.wire.resume();
    const fresh = wireOn();
    fresh.wire.fail(new ConnectionClosedError("pop3", "x"));
    fresh.wire.pause();
    // Assess
    expect(initially).toBe(false);
    expect([socket.pauses, socket.resumes, wire.paused]).toEqual([1, 1, false]);
    expect([failed.socket.pauses, failed.socket.resumes, failed.wire.paused]).toEqual([1, 0, true]);
    expect([fresh.socket.pauses, fresh.wire.paused]).toEqual([0, false]);
  });

  it("hands no piece to the sink after the sink failed the wire", async () => {
    // Prepare
    const { socket, wire } = wireOn();
    const pieces: string[] = [];
    // Act
    const body = wire.readBody((piece) => {
      pieces.push(text(piece));
      wire.fail(new ConnectionClosedError("pop3", "consumer gave up"));
      return true;
    });
    socket.serverSends("a\r\n..b\r\n.\r\n");
    // Assess
    await expect(body).rejects.toThrow("consumer gave up");
    expect(pieces).toEqual(["a\r\n"]);
  });

  it("flows again when the body ends in a chunk that came while paused, and only then", async () => {
    // Prepare
    const paused = wireOn();
    const flowing = wireOn();
    // Act
    const slow = paused.wire.readBody(() => false);
    paused.socket.serverSends("a\r\n");
    const pausedMidway = paused.wire.paused;
    paused.socket.serverSends(".\r\n");
    await slow;
    const fast = flowing.wire.readBody(() => true);
    flowing.socket.serverSends("a\r\n.\r\n");
    await fast;
    // Assess
    expect(pausedMidway).toBe(true);
    expect([paused.wire.paused, paused.socket.resumes]).toEqual([false, 1]);
    expect([flowing.wire.paused, flowing.socket.pauses, flowing.socket.resumes]).toEqual([false, 0, 0]);
  });
});

describe("Pop3Wire inactivity timeout (mutation survivors)", () => {
  it("times out a silent server after commandTimeoutMs, naming it", async () => {
    // Prepare
    vi.useFakeTimers();
    const { wire } = wireOn();
    // Act
    const reading = wire.readLine();
    const assessed = expect(reading).rejects.toThrow(
      new TimeoutError("pop3", "The POP3 server sent nothing for 50 ms"),
    );
    vi.advanceTimersByTime(50);
    // Assess
    await assessed;
    expect(wire.failure).toMatchObject({ service: "pop3" });
  });

  it("restarts the timeout on every chunk, so a slow but steady server is not cut off", async () => {
    // Prepare
    vi.useFakeTimers();
    const { socket, wire } = wireOn();
    // Act
    const reading = wire.readLine();
    for (const byte of "+OK slow\n") {
      vi.advanceTimersByTime(40);
      socket.serverSends(byte);
    }
    // Assess
    expect(text(await reading)).toBe("+OK slow");
  });

  it("disarms the timeout between replies and while the consumer holds the body back", async () => {
    // Prepare
    vi.useFakeTimers();
    const { socket, wire } = wireOn();
    const line = wire.readLine();
    socket.serverSends("+OK\r\n");
    await line;
    // Act
    vi.advanceTimersByTime(500);
    const idleFailure = wire.failure;
    const body = wire.readBody(() => false);
    socket.serverSends("a\r\n");
    socket.serverSends("b\r\n");
    vi.advanceTimersByTime(500);
    const pausedFailure = wire.failure;
    wire.pause();
    wire.resume();
    socket.serverSends(".\r\n");
    await body;
    wire.pause();
    wire.resume();
    vi.advanceTimersByTime(500);
    // Assess
    expect([idleFailure, pausedFailure, wire.failure]).toEqual([undefined, undefined, undefined]);
  });

  it("re-arms the timeout when a paused body read resumes", async () => {
    // Prepare
    vi.useFakeTimers();
    const { socket, wire } = wireOn();
    const body = wire.readBody(() => false);
    socket.serverSends("a\r\n");
    // Act
    wire.resume();
    const assessed = expect(body).rejects.toBeInstanceOf(TimeoutError);
    vi.advanceTimersByTime(50);
    // Assess
    await assessed;
  });
});
