// kubelet relists every second, and between two relists most pods and containers have not
// changed: building each item's message and protobuf-encoding it anew on every call was most
// of a List call's cost with 110 pods (2.6 ms of daemon CPU per ListPodSandbox, of which 0.2 ms
// was choosing the items). So each item is built once per state of its stream (perState), and
// encoded once per item object (encodeListsOnce): a List response is only the concatenation of
// its items' encodings, since a repeated field is encoded as its elements, one after another.
import type * as grpc from '@grpc/grpc-js';

type State = { value: unknown; context: object };

/**
 * `build`, remembered per state: a stream's context object is replaced on every change of it, so
 * the same context and value mean the same state and the same item, down to its identity.
 */
export function perState<S extends State, T>(build: (id: string, state: S) => T): (id: string, state: S) => T {
  const built = new WeakMap<object, { value: unknown; item: T }>();
  return (id, state) => {
    const hit = built.get(state.context);
    if (hit && hit.value === state.value) return hit.item;
    const item = build(id, state);
    built.set(state.context, { value: state.value, item });
    return item;
  };
}

/**
 * The service definition with the named List methods' responses encoded item by item, each item
 * object's bytes kept for as long as the object lives. `lists` maps a method to its response's one
 * repeated field; a response with anything else set is encoded whole, as before.
 */
export function encodeListsOnce(definition: grpc.ServiceDefinition, lists: Record<string, string>): grpc.ServiceDefinition {
  const out: Record<string, grpc.MethodDefinition<unknown, unknown>> = { ...definition };
  for (const [method, field] of Object.entries(lists)) {
    const original = definition[method];
    if (!original) throw new Error(`encodeListsOnce: no method ${method}`);
    const encodeWhole = original.responseSerialize as (value: unknown) => Buffer;
    const encoded = new WeakMap<object, Buffer>();
    const encodeItem = (item: object): Buffer => {
      let bytes = encoded.get(item);
      if (!bytes) {
        // A response holding only this item is the item's encoding within the field: tag, length, bytes.
        bytes = encodeWhole({ [field]: [item] });
        encoded.set(item, bytes);
      }
      return bytes;
    };
    out[method] = {
      ...original,
      responseSerialize: (value: unknown) => {
        const items = (value as Record<string, unknown>)[field];
        if (!Array.isArray(items) || Object.keys(value as object).length !== 1) return encodeWhole(value);
        return Buffer.concat(items.map((item: object) => encodeItem(item)));
      },
    };
  }
  return out as grpc.ServiceDefinition;
}
