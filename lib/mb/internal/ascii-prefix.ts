/** Whether `data` begins with the bytes of `prefix`, an ASCII string (read without decoding `data`). */
export function startsWithAscii(data: Uint8Array, prefix: string): boolean {
  if (data.length < prefix.length) {
    return false;
  }
  for (let i = 0; i < prefix.length; i++) {
    if (data[i] !== prefix.charCodeAt(i)) {
      return false;
    }
  }
  return true;
}
