import { Pop2GmailError } from "../../core/errors";

/** Code, message and hint of an error for a log line; our errors never carry secrets or bodies. */
export function describe(error: unknown): Record<string, unknown> {
  if (error instanceof Pop2GmailError) {
    return {
      name: error.name,
      code: error.code,
      message: error.message,
      ...(error.hint === undefined ? {} : { hint: error.hint }),
    };
  }
  return error instanceof Error ? { name: error.name, message: error.message } : { message: String(error) };
}
