// The Stream* variants of the List RPCs answer with the same selection in pages, so a node
// with thousands of entries never builds one huge message; each page waits for the transport.
const PAGE_SIZE = 100;

export async function sendInPages<T, Res>(
  items: T[],
  wrap: (page: T[]) => Res,
  send: (response: Res) => Promise<void>,
  pageSize = PAGE_SIZE,
): Promise<void> {
  for (let i = 0; i < items.length; i += pageSize) await send(wrap(items.slice(i, i + pageSize)));
}
