import { describe, expect, it } from "vitest";
import { errorForErrReply } from "../../../shared/adapters/pop3/pop3-reply-errors";
import { CredentialsError, Pop3CommandError } from "../../../shared/core/errors";

const err = (code: string | undefined, text: string) => ({ kind: "err" as const, code, text });

describe("errorForErrReply (mutation survivors)", () => {
  it("takes SYS/TEMP and SYS/PERM to a login as command failures, not as refused credentials", () => {
    // Act
    const temp = errorForErrReply("PASS", err("SYS/TEMP", "try later"), true);
    const perm = errorForErrReply("PASS", err("SYS/PERM", "broken"), true);
    // Assess
    expect(temp).toBeInstanceOf(Pop3CommandError);
    expect(perm).toBeInstanceOf(Pop3CommandError);
    expect(perm.message).toBe("POP3 PASS failed: -ERR [SYS/PERM] broken");
  });

  it("takes any other -ERR to a login as refused credentials, with the code and a hint", () => {
    // Act
    const refused = errorForErrReply("PASS", err("AUTH", "denied"), true);
    // Assess
    expect(refused).toBeInstanceOf(CredentialsError);
    expect(refused).toMatchObject({
      service: "pop3",
      responseCode: "AUTH",
      message: "The POP3 server refused the login (PASS): denied",
      hint: "Check the POP3 user name and the password stored in the named secret.",
    });
  });

  it("quotes the code of a failed command only when the server sent one", () => {
    // Act
    const plain = errorForErrReply("RETR", err(undefined, "no such message"), false);
    const coded = errorForErrReply("RETR", err("SYS/TEMP", "busy"), false);
    // Assess
    expect([plain.message, coded.message]).toEqual([
      "POP3 RETR failed: -ERR no such message",
      "POP3 RETR failed: -ERR [SYS/TEMP] busy",
    ]);
  });
});
