import type { Language, Strings } from "./onboarding-strings";

/** Escapes text for HTML element content and double-quoted attributes. */
export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** A page: one card, no script, styles from /assets/style.css only (the CSP allows nothing else). */
export function page(lang: Language, title: string, body: string): string {
  return `<!doctype html>
<html lang="${lang}">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>${escapeHtml(title)} · pop2gmail</title>
<link rel="stylesheet" href="/assets/style.css">
</head>
<body>
<main>
<p class="brand">pop2gmail</p>
<h1>${escapeHtml(title)}</h1>
${body}
</main>
</body>
</html>
`;
}

/** A form posting to `action` with the CSRF token. */
export function postButton(action: string, csrf: string, label: string, kind: "primary" | "danger"): string {
  return `<form method="post" action="${escapeHtml(action)}">
<input type="hidden" name="csrf" value="${escapeHtml(csrf)}">
<button type="submit" class="${kind}">${escapeHtml(label)}</button>
</form>`;
}

/** The refusal page for a link or form that cannot be used. */
export function problemPage(lang: Language, s: Strings, problem: keyof Strings["problems"]): string {
  return page(
    lang,
    s.errorTitle,
    `<p class="problem" data-problem="${problem}">${escapeHtml(s.problems[problem])}</p>
<p class="muted">${escapeHtml(s.contactProvider)}</p>`,
  );
}

/** The status figures of one mailbox, as the status view shows them. */
export interface MailboxStatusView {
  /** "unknown" where the runtime does not record polls in the ledger (AWS: CloudWatch has them). */
  readonly lastPoll:
    | { readonly at: number; readonly ok: boolean; readonly errorCode?: string }
    | "never"
    | "unknown";
  readonly deliveredToday: number;
  readonly delayP95Ms: number | undefined;
  readonly quarantined: readonly { readonly code?: string; readonly reason?: string; readonly at?: number }[];
}

export function statusSection(
  lang: Language,
  s: Strings,
  status: MailboxStatusView,
  timeZone: string | undefined,
): string {
  const when = new Intl.DateTimeFormat(lang === "it" ? "it-IT" : "en-GB", {
    dateStyle: "medium",
    timeStyle: "short",
    ...(timeZone === undefined ? {} : { timeZone }),
  });
  const last = status.lastPoll;
  const poll =
    last === "never" || last === "unknown"
      ? s.lastPollNever
      : last.ok
        ? when.format(last.at)
        : `${when.format(last.at)}: ${s.lastPollFailed({ code: last.errorCode ?? "?" })}`;
  const rows: [string, string, string][] = [
    ...(last === "unknown" ? [] : [["last-poll", s.lastPoll, poll] as [string, string, string]]),
    ["delivered-today", s.deliveredToday, String(status.deliveredToday)],
    [
      "delay-p95",
      s.delayP95,
      status.delayP95Ms === undefined ? s.noDelay : formatDuration(status.delayP95Ms),
    ],
  ];
  const quarantined =
    status.quarantined.length === 0
      ? `<p>${escapeHtml(s.quarantinedNone)}</p>`
      : `<ul class="held">${status.quarantined
          .map(
            (q) =>
              `<li>${q.at === undefined ? "" : `${escapeHtml(when.format(q.at))}: `}<strong>${escapeHtml(
                (q.code === undefined ? undefined : s.heldBecause[q.code]) ?? s.heldOther,
              )}</strong><br><span class="muted small">${escapeHtml(q.code ?? "")} ${escapeHtml(q.reason ?? "")}</span></li>`,
          )
          .join("")}</ul><p class="muted">${escapeHtml(s.quarantinedWhatToDo)}</p>`;
  return `<section class="status">
<h2>${escapeHtml(s.statusTitle)}</h2>
<dl>${rows.map(([id, term, value]) => `<div data-status="${id}"><dt>${escapeHtml(term)}</dt><dd>${escapeHtml(value)}</dd></div>`).join("")}</dl>
<h3>${escapeHtml(s.quarantinedTitle)}</h3>
<div data-status="quarantined">${quarantined}</div>
</section>`;
}

function formatDuration(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 120_000) return `${Math.round(ms / 1000)} s`;
  return `${Math.round(ms / 60_000)} min`;
}

/** The one style sheet: readable from 320 px phones to desktops, no web fonts, no images. */
export const STYLE_SHEET = `*{box-sizing:border-box}
body{margin:0;background:#f4f5f7;color:#1f2328;font:16px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif}
main{max-width:40rem;margin:0 auto;padding:1.5rem 1rem 3rem}
@media (min-width:48rem){main{margin-top:3rem;margin-bottom:3rem;background:#fff;border:1px solid #d0d7de;border-radius:12px;padding:2rem 2.5rem}}
.brand{margin:0 0 .5rem;font-weight:700;color:#0b57d0;letter-spacing:.02em}
h1{font-size:1.6rem;line-height:1.25;margin:.25rem 0 1rem}
h2{font-size:1.2rem;margin:1.75rem 0 .5rem}
h3{font-size:1rem;margin:1.25rem 0 .25rem}
p,li{overflow-wrap:anywhere}
.lead{font-size:1.05rem}
ol{padding-left:1.25rem}
li{margin:.35rem 0}
button{font:inherit;font-weight:600;border:0;border-radius:8px;padding:.8rem 1.4rem;cursor:pointer;width:100%;min-height:44px}
@media (min-width:30rem){button{width:auto}}
.primary{background:#0b57d0;color:#fff}
.danger{background:#fff;color:#b3261e;border:1px solid #b3261e}
form{margin:1rem 0}
.muted{color:#59636e;font-size:.92rem}
.small{font-size:.8rem}
.ok{background:#e6f4ea;border-left:4px solid #1e8e3e;padding:.75rem 1rem;border-radius:4px}
.warn,.problem{background:#fdecea;border-left:4px solid #b3261e;padding:.75rem 1rem;border-radius:4px}
dl{margin:0}
dl div{display:flex;flex-wrap:wrap;justify-content:space-between;gap:.25rem 1rem;padding:.5rem 0;border-bottom:1px solid #e5e7eb}
dt{color:#59636e}
dd{margin:0;font-weight:600}
.held{padding-left:1.25rem}
`;
