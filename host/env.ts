/**
 * Environment variables, read without failing when the permission is missing.
 *
 * @module
 */

/** Reads an environment variable, treating a missing permission or an empty value as unset. */
export function env(name: string): string | undefined {
  try {
    const value = Deno.env.get(name);
    return value === undefined || value === "" ? undefined : value;
  } catch {
    return undefined;
  }
}
