// Spanish and English: the browser's language unless the agent chose one (remembered).
// Dictionaries are JSON (`/console/i18n/<lang>.json`), the same keys in both (a test checks).

export const LANGUAGES = ['en', 'es'];
const STORAGE_KEY = 'switchboard.lang';

let dictionary = {};
let current = 'en';

/** The language to start in: the remembered choice, else the browser's, else English. */
export function preferredLanguage() {
  const saved = localStorage.getItem(STORAGE_KEY);
  if (LANGUAGES.includes(saved)) return saved;
  const browser = (navigator.languages || [navigator.language || 'en'])
    .map((l) => l.slice(0, 2).toLowerCase())
    .find((l) => LANGUAGES.includes(l));
  return browser || 'en';
}

/** Loads `lang`'s dictionary; `remember` keeps the choice for the next visit. */
export async function useLanguage(lang, remember = false) {
  const response = await fetch(`/console/i18n/${lang}.json`);
  dictionary = await response.json();
  current = lang;
  document.documentElement.lang = lang;
  if (remember) localStorage.setItem(STORAGE_KEY, lang);
}

export const language = () => current;

/** The text for `key` with `{name}` placeholders filled from `vars`. */
export function t(key, vars = {}) {
  const text = dictionary[key] ?? key;
  return text.replace(/\{(\w+)\}/g, (_, name) => (name in vars ? String(vars[name]) : `{${name}}`));
}
