// The load targets of issue 12 (README, "Many pods at once"), checked against one run's figures,
// so that each run of the density and single-ops benches says which it met.
import { fmt } from './kubelet.js';

export interface Target {
  what: string;
  value: number;
  /** The most the target allows. */
  limit: number;
  unit: string;
  /** What the figure is next to (a floor measured in the same run), or how it was taken. */
  note?: string;
  /** Decimals shown (1 unless said). */
  digits?: number;
}

export function describeTargets(targets: readonly Target[]): string[] {
  return [
    'targets (issue 12), this run:',
    ...targets.map((t) =>
      `  ${t.what.padEnd(52)} ${`${t.digits === undefined ? fmt(t.value) : t.value.toFixed(t.digits)}${t.unit}`.padStart(10)}  ≤ ${t.limit}${t.unit}  ${t.value <= t.limit ? 'met' : 'NOT MET'}${t.note ? `  (${t.note})` : ''}`),
  ];
}
