// The system's Chromium for the dashboard's tests (playwright-core drives it; nothing is
// downloaded), and the page problems that fail those tests.

import { type Browser, chromium, type Page } from "playwright-core";

const CHROMIUM_ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

/** Debian's /usr/bin/chromium, headless. */
export function launchChromium(): Promise<Browser> {
  return chromium.launch({ executablePath: "/usr/bin/chromium", args: CHROMIUM_ARGS });
}

/** Collects into `problems` what the page reports that it should not: script errors and CSP violations. */
export function watchProblems(page: Page, label: string, problems: string[]): void {
  page.on("pageerror", (error) => problems.push(`${label}: ${error.message}`));
  page.on("console", (message) => {
    if (/Content Security Policy|Refused to/i.test(message.text())) {
      problems.push(`${label}: ${message.text()}`);
    }
  });
}
