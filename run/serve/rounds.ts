/**
 * The rounds that batch a recommendation service's requests: one round at a time, started at
 * once when enough work waits, else after a short interval, each after the one before it.
 *
 * @module
 */

/** Runs a service's rounds one after another, started at once or after an interval. */
export class RoundScheduler {
  readonly #run: () => Promise<void>;
  readonly #intervalMs: number;
  #timer: ReturnType<typeof setTimeout> | null = null;
  #round: Promise<void> = Promise.resolve();

  /**
   * A scheduler with no round pending.
   * @param run one round: takes the waiting requests and settles them (never rejects)
   * @param intervalMs milliseconds a request waits for its round unless one is started at once
   */
  constructor(run: () => Promise<void>, intervalMs: number) {
    this.#run = run;
    this.#intervalMs = intervalMs;
  }

  /**
   * Starts a round after the one in flight: at once when `now` (cancelling the timer), else
   * when the interval ends (a timer already waiting serves).
   */
  schedule(now: boolean): void {
    if (now) {
      if (this.#timer !== null) clearTimeout(this.#timer);
      this.#timer = null;
      this.#round = this.#round.then(() => this.#run());
    } else if (this.#timer === null) {
      this.#timer = setTimeout(() => {
        this.#timer = null;
        this.#round = this.#round.then(() => this.#run());
      }, this.#intervalMs);
    }
  }

  /** Cancels the waiting timer and waits for the rounds already started. */
  async stop(): Promise<void> {
    if (this.#timer !== null) clearTimeout(this.#timer);
    this.#timer = null;
    await this.#round;
  }
}
