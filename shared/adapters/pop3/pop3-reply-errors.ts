import { CredentialsError, MailboxBusyError, type Pop2GmailError, Pop3CommandError } from "../../core/errors";
import type { StatusLine } from "./status-line";

type ErrLine = Extract<StatusLine, { kind: "err" }>;

/**
 * Maps a `-ERR` to the typed error callers branch on. `command` is the verb only (never its
 * arguments: PASS and AUTH lines carry the password).
 *
 * RFC 2449 §8.1.1 / RFC 3206: IN-USE and LOGIN-DELAY mean "try later" wherever they appear.
 * To login commands, any other -ERR except SYS/TEMP or SYS/PERM is a credentials failure:
 * many servers answer a wrong password with a bare "-ERR Authentication failed".
 */
export function errorForErrReply(command: string, reply: ErrLine, isLogin: boolean): Pop2GmailError {
  const { code, text } = reply;
  const busy = code === "IN-USE" ? "IN-USE" : code === "LOGIN-DELAY" ? "LOGIN-DELAY" : undefined;
  if (busy !== undefined) return new MailboxBusyError(busy, `POP3 ${command}: -ERR [${busy}] ${text}`);
  if (isLogin && code !== "SYS/TEMP" && code !== "SYS/PERM") {
    return new CredentialsError("pop3", `The POP3 server refused the login (${command}): ${text}`, {
      ...(code === undefined ? {} : { responseCode: code }),
      hint: "Check the POP3 user name and the password stored in the named secret.",
    });
  }
  return new Pop3CommandError(command, code, code === undefined ? text : `[${code}] ${text}`);
}
