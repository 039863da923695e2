// The naming rule for registries and upstream-proxy keys, as the server applies it
// (src/domain/name.rs), so a form says what is wrong while the user types, in the server's words.

const MAX_NAME_LENGTH = 255;

/** Why `value` is not a valid name, or null when it is. */
export function nameProblem(value) {
  const chars = [...value];
  if (chars.length === 0) return "must not be empty";
  if (chars.length > MAX_NAME_LENGTH) {
    return `must be at most ${MAX_NAME_LENGTH} characters (it has ${chars.length})`;
  }
  const bad = chars.findIndex((c) => !/^[a-z0-9_.-]$/.test(c));
  if (bad >= 0) {
    return `may contain only lowercase letters, digits, '_', '.' and '-' (found ${quoteChar(chars[bad])} at position ${bad + 1})`;
  }
  if (!/^[a-z]/.test(value)) return "must start with a lowercase letter";
  if (!/[a-z0-9]$/.test(value)) return "must end with a lowercase letter or digit";
  for (const run of value.split(/[a-z0-9]+/)) {
    if (run && run !== "." && run !== "_" && run !== "__" && !/^-+$/.test(run)) {
      return `must not contain ${JSON.stringify(run)}: separators stand alone ('.', '_', '__' or a run of '-') between letters or digits`;
    }
  }
  return null;
}

function quoteChar(c) {
  if (c === "'" || c === "\\") return `'\\${c}'`;
  const escapes = { "\n": "\\n", "\t": "\\t", "\r": "\\r", "\0": "\\0" };
  return `'${escapes[c] ?? c}'`;
}
