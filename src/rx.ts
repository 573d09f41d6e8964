// The parts of rxjs crisp uses, each from its own module: rxjs's index loads all of its ~220
// modules, ~4.5 MB of the daemon's RSS for the two it needs at run time.
export { Subject } from 'rxjs/internal/Subject';
export { filter } from 'rxjs/internal/operators/filter';
export type { Observable, Subscription } from 'rxjs';
