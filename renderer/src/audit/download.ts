/** Offers a file to the user through a Blob and an `<a download>`; works the same in Electron. */
export function downloadText(fileName: string, text: string, type: string): void {
  const url = URL.createObjectURL(new Blob([text], { type }));
  const a = document.createElement('a');
  a.href = url;
  a.download = fileName;
  a.rel = 'noopener';
  document.body.append(a);
  a.click();
  a.remove();
  // The download has taken its copy once the click was handled; the next tick may let go.
  setTimeout(() => URL.revokeObjectURL(url), 1_000);
}
