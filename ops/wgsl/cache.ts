/**
 * Generated WGSL, kept: a kernel's source is built from its compile-time constants once, and
 * every later launch gets the same string object back. Building a source costs tens of
 * microseconds, and the runtime looks pipelines up by source, which hashes a new string in full;
 * with a few hundred launches a step that was a large share of the host's time per step.
 *
 * With the environment variable `SSMREC_CHECK_SHADER_CACHE=1` (the test task sets it) every
 * cache hit is checked against a fresh generation, so a key that leaves out something the source
 * depends on fails loudly instead of launching the wrong kernel.
 *
 * @module
 */

/** Entries one generator keeps; past it the oldest is dropped (keys that embed sizes churn). */
export const SHADER_CACHE_ENTRIES = 256;

function checkingHits(): boolean {
  try {
    return Deno.env.get("SSMREC_CHECK_SHADER_CACHE") === "1";
  } catch {
    return false; // no permission to read the environment
  }
}

const CHECK_HITS = checkingHits();

/** A bounded map from keys to sources, each source made once per key. */
class SourceCache {
  readonly #sources = new Map<string, string>();

  constructor(readonly name: string) {}

  get(key: string, make: () => string): string {
    const cached = this.#sources.get(key);
    if (cached !== undefined) {
      if (CHECK_HITS) {
        const fresh = make();
        if (fresh !== cached) {
          throw new Error(
            `${this.name}: the cached WGSL for key ${key} differs from a fresh generation; the ` +
              "key leaves out something the source depends on",
          );
        }
      }
      return cached;
    }
    const made = make();
    if (this.#sources.size >= SHADER_CACHE_ENTRIES) {
      this.#sources.delete(this.#sources.keys().next().value!);
    }
    this.#sources.set(key, made);
    return made;
  }
}

/**
 * `make` with its sources kept: called again with arguments that give the same key, it returns
 * the string it made the first time.
 * @param name what the sources are, for the message of a failed check
 * @param make builds a source from plain data (numbers, booleans, strings, plain objects)
 * @param key the cache key of the arguments: by default their JSON, which covers everything
 *   `make` can read; a narrower key (leaving out sizes the source does not embed) must name
 *   everything the source depends on
 */
export function shaderGenerator<A extends unknown[]>(
  name: string,
  make: (...args: A) => string,
  key: (...args: A) => string = (...args) => JSON.stringify(args),
): (...args: A) => string {
  const cache = new SourceCache(name);
  return (...args: A) => cache.get(key(...args), () => make(...args));
}

const keyed = new SourceCache("cachedShader");

/** The source `make` gives, made once per `key` (a key names everything the source depends on). */
export function cachedShader(key: string, make: () => string): string {
  return keyed.get(key, make);
}
