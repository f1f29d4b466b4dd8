// The UI library: Preact with htm templates (vendored, no build step).
export { html, render, useState, useEffect, useRef, useMemo, useCallback } from '../vendor/preact-htm-3.1.1.mjs';
