import { type ParseError, parse, printParseErrorCode, visit } from "jsonc-parser";
import { ConfigError } from "../core/errors";

/**
 * Parses JSON with comments and trailing commas (a hand-edited `.jsonc` config) with Microsoft's
 * `jsonc-parser`, which leaves string contents alone. Any syntax error, and a key given twice in
 * one object (the parser would keep the last silently, like a typo's default), throws
 * `ConfigError` naming `source:line:column` of the first one, so the operator can go straight to it.
 */
export function parseJsonc(text: string, source: string): unknown {
  const errors: ParseError[] = [];
  const value: unknown = parse(text, errors, {
    allowTrailingComma: true,
    disallowComments: false,
    allowEmptyContent: false,
  });
  const first = errors[0];
  if (first !== undefined) {
    const { line, column } = lineAndColumn(text, first.offset);
    const more = errors.length > 1 ? ` (and ${errors.length - 1} more)` : "";
    throw new ConfigError("--config", `${source}:${line}:${column}: ${describe(first)}${more}`, {
      hint: "Fix the syntax at that line and column (comments and trailing commas are allowed).",
    });
  }
  const duplicate = firstDuplicateKey(text);
  if (duplicate !== undefined) {
    throw new ConfigError(
      "--config",
      `${source}:${duplicate.line}:${duplicate.column}: "${duplicate.key}" is given twice in the same object`,
      { hint: "Keep one of them: only one value can apply." },
    );
  }
  return value;
}

/** The second occurrence of the first key that appears twice in one object, if any. */
function firstDuplicateKey(text: string): { key: string; line: number; column: number } | undefined {
  const open: Set<string>[] = [];
  let found: { key: string; line: number; column: number } | undefined;
  visit(text, {
    onObjectBegin: () => {
      open.push(new Set());
    },
    onObjectEnd: () => {
      open.pop();
    },
    onObjectProperty: (key, offset) => {
      const keys = open.at(-1);
      if (found !== undefined || keys === undefined) return;
      if (keys.has(key)) found = { key, ...lineAndColumn(text, offset) };
      keys.add(key);
    },
  });
  return found;
}

/** 1-based line and column (in UTF-16 code units, as editors count) of a character offset. */
function lineAndColumn(text: string, offset: number): { line: number; column: number } {
  const before = text.slice(0, offset);
  const lastBreak = before.lastIndexOf("\n");
  return { line: before.split("\n").length, column: offset - lastBreak };
}

/** `CommaExpected` -> "comma expected". */
function describe(error: ParseError): string {
  return printParseErrorCode(error.error)
    .replace(/([a-z])([A-Z])/g, "$1 $2")
    .toLowerCase();
}
