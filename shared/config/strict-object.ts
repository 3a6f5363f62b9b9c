import * as z from "zod";
import { closestName } from "./closest-name";

/**
 * `z.strictObject` whose unknown keys are errors that name the key and, where one is close, the
 * valid key the operator probably meant (docs/pipeline.md: a config key we do not know is an
 * error). A silently dropped `"deleteAftr": "never"` would have let the default delete mail.
 * The message holds one line per unknown key, in the order of the issue's `keys`.
 */
export function strictObject<T extends z.core.$ZodLooseShape>(shape: T) {
  return z.strictObject(shape, { error: unknownKeysMessage });
}

/** The text after the key's path, e.g. `unknown key "deleteAftr"; did you mean "deleteAfter"?`. */
export function unknownKeyText(key: string, known: readonly string[]): string {
  const near = closestName(key, known);
  return `unknown key "${key}"${near === undefined ? "" : `; did you mean "${near}"?`}`;
}

function unknownKeysMessage(issue: z.core.$ZodRawIssue): string | undefined {
  if (issue.code !== "unrecognized_keys") return undefined;
  const known = issue.inst instanceof z.ZodObject ? Object.keys(issue.inst.shape) : [];
  return issue.keys.map((key) => unknownKeyText(key, known)).join("\n");
}
