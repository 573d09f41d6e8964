// What an image says about running it (its config's Entrypoint, Cmd, Env, User, StopSignal...),
// read once per image: every container create and stop, and every pod's pause container, would
// otherwise read and parse the config blob again.
import type { BlobStore } from '../storage/blob-store.js';
import type { OciImageConfig } from '../spec/oci-types.js';

/** A small bounded cache keyed by image id: image contents never change under an id. */
export class PerImage<T> {
  private readonly entries = new Map<string, T>();
  constructor(private readonly bound = 64) {}
  async get(imageId: string, read: () => Promise<T>): Promise<T> {
    const cached = this.entries.get(imageId);
    if (cached !== undefined) return cached;
    const value = await read();
    if (this.entries.size >= this.bound) this.entries.delete(this.entries.keys().next().value!);
    this.entries.set(imageId, value);
    return value;
  }
}

const imageConfigs = new PerImage<OciImageConfig>();

/** The image config JSON's `config` member; a copy the caller may change. */
export async function imageConfigOf(blobs: Pick<BlobStore, 'read'>, imageId: string): Promise<OciImageConfig> {
  const config = await imageConfigs.get(imageId, async () => (JSON.parse((await blobs.read(imageId)).toString('utf8')) as { config?: OciImageConfig }).config ?? {});
  return structuredClone(config);
}
