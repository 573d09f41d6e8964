import type { ListPodSandboxMetricsRequest__Output } from './proto/gen/runtime/v1/ListPodSandboxMetricsRequest.js';
import type { ListPodSandboxMetricsResponse } from './proto/gen/runtime/v1/ListPodSandboxMetricsResponse.js';
import type { PodSandboxMetrics } from './proto/gen/runtime/v1/PodSandboxMetrics.js';
import type { UnaryHandler } from './wrap.js';
import type { StatsDeps } from '../actors/stats/stats-deps.js';
import { podSandboxMetrics } from '../actors/stats/pod-metrics.js';
import { liveContainers } from '../actors/container/container-view.js';
import { collectPodSandboxStats } from './list-pod-sandbox-stats.js';

export async function collectPodSandboxMetrics(deps: StatsDeps): Promise<PodSandboxMetrics[]> {
  const images = new Map(liveContainers(deps.ctx.store).map(([id, s]) => [id, s.context.image?.requested ?? '']));
  return (await collectPodSandboxStats(deps, null)).map((stats) => podSandboxMetrics(stats, images));
}

export const listPodSandboxMetrics = (deps: StatsDeps): UnaryHandler<ListPodSandboxMetricsRequest__Output, ListPodSandboxMetricsResponse> =>
  async () => ({ pod_metrics: await collectPodSandboxMetrics(deps) });
