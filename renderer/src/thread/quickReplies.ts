import { useCallback, useState } from 'react';

/**
 * Saved quick replies live on this computer only (localStorage), not in the core: they are the
 * desk's own phrasing, not patient data.
 */
const KEY = 'clinic-inbox.quick-replies';

function read(): string[] {
  try {
    const parsed: unknown = JSON.parse(localStorage.getItem(KEY) ?? '[]');
    return Array.isArray(parsed) ? parsed.filter((x): x is string => typeof x === 'string').slice(0, 50) : [];
  } catch {
    return [];
  }
}

export function useQuickReplies(): { replies: string[]; add(text: string): void; remove(index: number): void } {
  const [replies, setReplies] = useState(read);
  const save = (next: string[]): void => {
    localStorage.setItem(KEY, JSON.stringify(next));
    setReplies(next);
  };
  const add = useCallback((text: string) => {
    const trimmed = text.trim();
    if (trimmed && !read().includes(trimmed)) save([...read(), trimmed]);
  }, []);
  const remove = useCallback((index: number) => save(read().filter((_, i) => i !== index)), []);
  return { replies, add, remove };
}
