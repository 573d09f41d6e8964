// Start-up reconcile around the other services' recovery: reboot detection runs first (so the
// others recover from what a reboot left), the leak sweep last (so only what no re-driven stream
// claimed is released). Both record what they observe in the log.
import type { ServiceFactory } from './context.js';
import { reconcileBoot } from '../actors/reconcile/boot.js';
import { sweepLeaks } from '../actors/reconcile/leaks.js';

export const bootService: ServiceFactory = (ctx) => ({
  name: 'boot',
  async recover() {
    await reconcileBoot({ runroot: ctx.config.runroot, store: ctx.store, logger: ctx.logger.child({ service: 'boot' }) });
  },
});

export const leakSweepService: ServiceFactory = (ctx) => ({
  name: 'leak-sweep',
  async recover() {
    const logger = ctx.logger.child({ service: 'leak-sweep' });
    await sweepLeaks({ root: ctx.config.root, runroot: ctx.config.runroot, store: ctx.store, runtime: ctx.runtime, logger, cni: ctx.network });
  },
});
