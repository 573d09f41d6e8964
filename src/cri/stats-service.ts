// The observability slice of the CRI: container and pod stats, the cAdvisor-style pod
// metrics, and the container event stream kubelet's evented PLEG follows.
import type { ServiceFactory } from './context.js';
import { StatsCollector } from '../actors/stats/collector.js';
import { ContainerEventHub } from '../actors/stats/container-events.js';
import type { StatsDeps } from '../actors/stats/stats-deps.js';
import { containerStats } from './container-stats.js';
import { listContainerStats } from './list-container-stats.js';
import { streamContainerStats } from './stream-container-stats.js';
import { podSandboxStats } from './pod-sandbox-stats.js';
import { listPodSandboxStats } from './list-pod-sandbox-stats.js';
import { streamPodSandboxStats } from './stream-pod-sandbox-stats.js';
import { listMetricDescriptors } from './list-metric-descriptors.js';
import { listPodSandboxMetrics } from './list-pod-sandbox-metrics.js';
import { streamPodSandboxMetrics } from './stream-pod-sandbox-metrics.js';
import { getContainerEvents } from './get-container-events.js';

export const statsService: ServiceFactory = (ctx) => {
  const logger = ctx.logger.child({ service: 'stats' });
  const deps: StatsDeps = {
    ctx,
    collector: new StatsCollector(ctx.store, { root: ctx.config.root, writableLayers: ctx.writableLayers, logger }),
    events: new ContainerEventHub(ctx.store, { logger }),
  };
  // Subscribed from the start, so facts recorded by other services' recovery are seen too.
  deps.events.start();
  // Event streams never end on their own: end them when crisp starts shutting down, so the
  // server's graceful stop is not held up by kubelet's open GetContainerEvents call.
  ctx.readiness.onChange((ready) => {
    if (!ready) deps.events.closeSubscribers();
  });
  return {
    name: 'stats',
    runtime: {
      ContainerStats: containerStats(deps),
      ListContainerStats: listContainerStats(deps),
      StreamContainerStats: streamContainerStats(deps),
      PodSandboxStats: podSandboxStats(deps),
      ListPodSandboxStats: listPodSandboxStats(deps),
      StreamPodSandboxStats: streamPodSandboxStats(deps),
      ListMetricDescriptors: listMetricDescriptors(),
      ListPodSandboxMetrics: listPodSandboxMetrics(deps),
      StreamPodSandboxMetrics: streamPodSandboxMetrics(deps),
      GetContainerEvents: getContainerEvents(deps),
    },
    async close() {
      deps.events.stop();
      deps.collector.close();
    },
  };
};
