import { randomBytes } from 'node:crypto';
import type { CreateContainerRequest__Output } from './proto/gen/runtime/v1/CreateContainerRequest.js';
import type { CreateContainerResponse } from './proto/gen/runtime/v1/CreateContainerResponse.js';
import type { UnaryHandler } from './wrap.js';
import type { ContainerDeps } from '../actors/container/container-deps.js';
import { containerLogPath, containerNameKey, validateCreateContainer } from '../machines/container-config.js';
import { differingField } from '../machines/request-compare.js';
import { sandboxState } from '../actors/sandbox/sandbox-streams.js';
import { resolveStreamId } from '../actors/stream-lookup.js';
import { resolveImage } from '../actors/image-pull/image-index.js';
import { liveContainers } from '../actors/container/container-view.js';
import { containerLayout } from '../actors/monitor/container-layout.js';
import { awaitCreated } from '../actors/container/container-requests.js';
import { planResources } from '../actors/spec/resources.js';
import { alreadyExists, failedPrecondition, notFound } from '../errors.js';
import { nowNs } from '../events/clock.js';
import type { ImageVolume } from '../machines/events.js';

/**
 * Everything from the lookups to the append runs without an await, so two concurrent creates
 * with one name cannot both miss each other: the second finds the first and waits for it.
 */
export const createContainer = (deps: ContainerDeps): UnaryHandler<CreateContainerRequest__Output, CreateContainerResponse> =>
  async (request, rpc) => {
    const { sandboxId: requested, config, imageName } = validateCreateContainer(request);
    // Limits the node cannot honour (CPUs it lacks, a limit below the floor) are the caller's
    // mistake, found here rather than as a failed runtime step.
    planResources(config.linux?.resources ?? null, await deps.hostFacts());
    const { store } = deps.ctx;
    const sandboxId = resolveStreamId(store, 'sandbox', requested, 'pod_sandbox_id');
    const sandbox = sandboxId ? sandboxState(store, sandboxId) : undefined;
    if (!sandboxId || !sandbox) throw notFound(`pod_sandbox_id: pod sandbox ${requested} not found`);
    if (sandbox.value !== 'ready') throw failedPrecondition(`pod_sandbox_id: pod sandbox ${sandboxId} is ${sandbox.value}, not ready`);
    const image = resolveImage(store, imageName);
    if (!image) throw notFound(`config.image.image: image ${JSON.stringify(imageName)} is not present; pull it first`);
    const imageVolumes: ImageVolume[] = [];
    config.mounts.forEach((m, i) => {
      const name = m.image?.image.trim() ?? '';
      if (name === '') return;
      const volume = resolveImage(store, name);
      if (!volume) throw notFound(`mounts[${i}].image.image: image ${JSON.stringify(name)} is not present; pull it first`);
      imageVolumes.push({ mount: i, image: { requested: name, id: volume.context.id, ref: volume.context.repoDigests[0] ?? volume.context.id } });
    });

    const nameKey = containerNameKey(sandboxId, config);
    // A create that failed holds the name while it unwinds: the same request then gets its error.
    const holder = liveContainers(store).find(([, s]) => s.context.nameKey === nameKey && s.value !== 'removing');
    let id: string;
    if (holder) {
      const differs = differingField(holder[1].context.config, config, 'config');
      if (differs) {
        throw alreadyExists(`config.metadata: name ${JSON.stringify(config.metadata!.name)} attempt ${config.metadata!.attempt} is taken in pod ${sandboxId} by container ${holder[0]}, whose request differs at ${differs}`);
      }
      id = holder[0];
    } else {
      id = randomBytes(32).toString('hex');
      const logPath = containerLogPath(sandbox.context.config?.log_directory ?? '', config, containerLayout(deps.ctx.config.root, id).defaultLog);
      store.append({
        kind: 'container',
        streamId: id,
        expectedVersion: 0,
        events: [{
          type: 'ContainerCreateRequested',
          sandboxId,
          config,
          image: { requested: imageName, id: image.context.id, ref: image.context.repoDigests[0] ?? image.context.id },
          ...(imageVolumes.length > 0 && { imageVolumes }),
          nameKey,
          logPath,
          createdAt: nowNs().toString(),
        }],
      });
    }
    await awaitCreated(deps, id, rpc.signal);
    return { container_id: id };
  };
