/**
 * Reads a reply body to its end, but never more than `limit` bytes: past it, it stops reading (which
 * destroys the body stream and its connection) and throws `tooLarge()`. A content-length check alone
 * does not bound a chunked reply, which has none.
 */
export async function readBoundedBody(body: AsyncIterable<Uint8Array>, limit: number, tooLarge: () => Error): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of body) {
    size += chunk.length;
    if (size > limit) {
      throw tooLarge();
    }
    chunks.push(Buffer.from(chunk));
  }
  return Buffer.concat(chunks).toString('utf8');
}
