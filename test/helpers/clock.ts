// The wall clock as NTP or a restored VM moves it, for the hub's rules that read it.

/**
 * Date.now as a hub started after this reads it, moved by step() as NTP steps a clock; restore()
 * puts the real one back.
 */
export function steppableClock(): { step: (ms: number) => void; restore: () => void } {
  const real = Date.now;
  let skew = 0;
  Date.now = () => real() + skew;
  return { step: (ms) => void (skew += ms), restore: () => void (Date.now = real) };
}
