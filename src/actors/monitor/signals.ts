// Signal names as kubelet and images spell them (STOPSIGNAL "SIGTERM", "TERM", "15",
// "SIGRTMIN+3") → numbers, which is what we hand to runc so it never has to guess.
import { constants } from 'node:os';
import { invalidArgument } from '../../errors.js';

// glibc reserves the first two real-time signals, so userspace SIGRTMIN is 34 on Linux
const SIGRTMIN = 34;
const SIGRTMAX = 64;

export function parseSignal(signal: string | number, field = 'signal'): number {
  if (typeof signal === 'number') {
    if (Number.isInteger(signal) && signal >= 1 && signal <= SIGRTMAX) return signal;
    throw invalidArgument(`${field} ${signal} is not a signal number (1-${SIGRTMAX})`);
  }
  const text = String(signal).trim().toUpperCase();
  if (/^\d+$/.test(text)) return parseSignal(Number(text), field);
  const name = text.startsWith('SIG') ? text : `SIG${text}`;
  const rt = /^SIGRT(MIN|MAX)(?:([+-])(\d+))?$/.exec(name);
  if (rt) {
    const base = rt[1] === 'MIN' ? SIGRTMIN : SIGRTMAX;
    const offset = rt[3] === undefined ? 0 : Number(rt[3]) * (rt[2] === '-' ? -1 : 1);
    const value = base + offset;
    if (value >= SIGRTMIN && value <= SIGRTMAX) return value;
    throw invalidArgument(`${field} ${JSON.stringify(signal)} is outside SIGRTMIN..SIGRTMAX`);
  }
  const value = (constants.signals as Record<string, number | undefined>)[name];
  if (value === undefined) throw invalidArgument(`${field} ${JSON.stringify(signal)} is not a known signal`);
  return value;
}

// The canonical name of each standard signal number (aliases such as SIGIOT or SIGPOLL lose to
// the name Linux documents first).
const NAME_OF = new Map<number, string>();
for (const [name, value] of Object.entries(constants.signals)) if (!NAME_OF.has(value)) NAME_OF.set(value, name);

/** A signal's canonical name: "SIGTERM", "SIGRTMIN+3", "SIGRTMAX-2". */
export function signalName(signal: string | number, field = 'signal'): string {
  const n = parseSignal(signal, field);
  if (n >= SIGRTMIN) {
    if (n === SIGRTMIN) return 'SIGRTMIN';
    if (n === SIGRTMAX) return 'SIGRTMAX';
    return n - SIGRTMIN <= 15 ? `SIGRTMIN+${n - SIGRTMIN}` : `SIGRTMAX-${SIGRTMAX - n}`;
  }
  return NAME_OF.get(n) ?? String(n);
}

/**
 * The CRI Signal enum (ContainerConfig.stop_signal) as a signal name; null for
 * SIGNAL_RUNTIME_DEFAULT, which leaves the choice to the image.
 */
export function signalNameOfCri(value: string, field = 'stop_signal'): string | null {
  if (value === '' || value === 'SIGNAL_RUNTIME_DEFAULT') return null;
  const m = /^SIGNAL_(SIG[A-Z0-9]+?)(?:(PLUS|MINUS)(\d+))?$/.exec(value);
  if (!m) throw invalidArgument(`${field}: ${JSON.stringify(value)} is not a signal`);
  const text = m[2] ? `${m[1]}${m[2] === 'PLUS' ? '+' : '-'}${m[3]}` : m[1]!;
  return signalName(text, field);
}

/** A signal name as the CRI Signal enum reports it (ContainerStatus.stop_signal). */
export function criSignalOf(name: string): string {
  const canonical = signalName(name);
  return `SIGNAL_${canonical.replace('+', 'PLUS').replace('-', 'MINUS')}`;
}
