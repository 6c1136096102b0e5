// The event loop's turns, counted by a setImmediate ticker that runs once a turn until stopped:
// a test proves that work let the loop turn, or held it, by the count, never by a clock.
export interface TurnCounter {
  /** Turns counted so far. */
  readonly turns: number;
  /** Stops counting; the turns counted. */
  stop(): number;
}

export function countTurns(): TurnCounter {
  let turns = 0;
  let done = false;
  const tick = (): void => {
    if (done) return;
    turns++;
    setImmediate(tick);
  };
  setImmediate(tick);
  return {
    get turns() {
      return turns;
    },
    stop() {
      done = true;
      return turns;
    },
  };
}
