/**
 * Every word the onboarding pages show, in English and Italian (the provider's customers in the
 * seed are Italian). One place, so a translation is checked side by side.
 */
export type Language = "en" | "it";

type Text = string;
type Fill = (values: Record<string, string>) => string;

export interface Strings {
  readonly title: Text;
  readonly intro: Fill;
  readonly whatItDoes: readonly Text[];
  readonly connect: Text;
  readonly connectNote: Text;
  readonly connectedTitle: Text;
  readonly connectedAs: Fill;
  readonly checkOk: Fill;
  readonly checkAccountDiffers: Fill;
  readonly checkNoImportScope: Text;
  readonly checkFailed: Fill;
  readonly statusTitle: Text;
  readonly lastPoll: Text;
  readonly lastPollNever: Text;
  readonly lastPollFailed: Fill;
  readonly deliveredToday: Text;
  readonly delayP95: Text;
  readonly noDelay: Text;
  readonly quarantinedTitle: Text;
  readonly quarantinedNone: Text;
  readonly quarantinedWhatToDo: Text;
  /** Plain words for a quarantine code; the technical reason follows in small print. */
  readonly heldBecause: Record<string, Text>;
  readonly heldOther: Text;
  readonly disconnect: Text;
  readonly disconnectNote: Text;
  readonly disconnectedTitle: Text;
  readonly disconnectedBody: Text;
  readonly revokeFailed: Text;
  readonly newLinkNeeded: Text;
  readonly errorTitle: Text;
  readonly problems: Record<
    | "malformed"
    | "tampered"
    | "expired"
    | "foreign-tenant"
    | "used"
    | "unknown-mailbox"
    | "csrf"
    | "sign-in-expired"
    | "denied"
    | "exchange-failed"
    | "rate-limited"
    | "not-found",
    Text
  >;
  readonly contactProvider: Text;
}

const en: Strings = {
  title: "Connect your Gmail account",
  intro: ({ pop3, gmail }) =>
    `Mail that arrives at ${pop3} will be delivered into the Gmail account ${gmail}, usually within a minute.`,
  whatItDoes: [
    "Each message is first copied byte for byte into your company's own archive, which is kept.",
    "Then it is placed in your Gmail inbox, where Gmail's spam and virus checks still run.",
    "Only after Gmail holds it is the message deleted from the old mailbox (POP3).",
  ],
  connect: "Connect Gmail",
  connectNote:
    "Google will ask you to sign in and to allow pop2gmail to add messages to your Gmail. pop2gmail cannot read or send your mail.",
  connectedTitle: "Gmail is connected",
  connectedAs: ({ account }) => `Connected Gmail account: ${account}`,
  checkOk: ({ account }) => `Google accepted the connection: new mail will now arrive in ${account}.`,
  checkAccountDiffers: ({ account, gmail }) =>
    `You signed in as ${account}, but mail is set to go to ${gmail}. Ask your provider to change the address, or disconnect and sign in as ${gmail}.`,
  checkNoImportScope:
    "Google did not grant permission to add messages to Gmail. Disconnect, then ask your provider for a new link and allow every permission.",
  checkFailed: ({ reason }) =>
    `Google did not accept the connection (${reason}). Ask your provider for help.`,
  statusTitle: "Status",
  lastPoll: "Last check of the old mailbox",
  lastPollNever: "not yet",
  lastPollFailed: ({ code }) => `failed (${code}); your provider has been alerted`,
  deliveredToday: "Messages delivered today",
  delayP95: "Delivery time (95% of messages within)",
  noDelay: "no messages yet",
  quarantinedTitle: "Messages held back",
  quarantinedNone: "None.",
  heldBecause: {
    MESSAGE_TOO_LARGE: "Too large for Gmail.",
    MESSAGE_REJECTED: "Gmail refused this message.",
    IMPORT_UNCERTAIN: "Gmail's answer was lost; your provider checks whether it arrived.",
    TOO_MANY_ATTEMPTS: "Delivery failed several times.",
    VANISHED: "The message left the old mailbox before it was delivered.",
    INVALID_UIDL: "The old mailbox gave this message an unusable label.",
  },
  heldOther: "Held back for a check by your provider.",
  quarantinedWhatToDo:
    "These messages are safe in the archive and still in the old mailbox. Your provider has been alerted and will deliver or explain them.",
  disconnect: "Disconnect",
  disconnectNote:
    "Disconnecting stops delivery into Gmail and withdraws pop2gmail's permission at Google. New mail stays in the old mailbox.",
  disconnectedTitle: "Gmail is disconnected",
  disconnectedBody:
    "pop2gmail no longer delivers into Gmail and its permission at Google is withdrawn. New mail stays in the old mailbox.",
  revokeFailed:
    "Google could not be reached to withdraw the permission; the stored permission was deleted anyway. You can also remove pop2gmail at myaccount.google.com/permissions.",
  newLinkNeeded: "To connect again, ask your provider for a new link.",
  errorTitle: "This link cannot be used",
  problems: {
    malformed: "This link is incomplete. Copy the whole link from the message you received.",
    tampered: "This link has been altered. Use the link exactly as you received it.",
    expired: "This link has expired. Ask your provider for a new one.",
    "foreign-tenant": "This link belongs to another service. Use the link your provider sent you.",
    used: "This link has already been used to connect a Gmail account. Ask your provider for a new one.",
    "unknown-mailbox": "The mailbox of this link is no longer set up. Ask your provider.",
    csrf: "The form expired or did not come from this page. Go back, reload the page and try again.",
    "sign-in-expired": "The Google sign-in took too long or was already finished. Open your link again.",
    denied: "You did not allow access at Google, so nothing was connected. Open your link again to retry.",
    "exchange-failed": "Google did not complete the connection. Open your link again to retry.",
    "rate-limited": "Too many attempts. Wait a minute and try again.",
    "not-found": "There is nothing at this address.",
  },
  contactProvider: "Nothing was changed.",
};

const it: Strings = {
  title: "Collega il tuo account Gmail",
  intro: ({ pop3, gmail }) =>
    `La posta che arriva a ${pop3} sarà consegnata nell'account Gmail ${gmail}, di solito entro un minuto.`,
  whatItDoes: [
    "Ogni messaggio viene prima copiato, identico byte per byte, nell'archivio della tua azienda, che viene conservato.",
    "Poi viene messo nella tua posta in arrivo di Gmail, dove i controlli antispam e antivirus di Gmail restano attivi.",
    "Solo quando Gmail lo ha ricevuto il messaggio viene cancellato dalla vecchia casella (POP3).",
  ],
  connect: "Collega Gmail",
  connectNote:
    "Google ti chiederà di accedere e di permettere a pop2gmail di aggiungere messaggi al tuo Gmail. pop2gmail non può leggere né inviare la tua posta.",
  connectedTitle: "Gmail è collegato",
  connectedAs: ({ account }) => `Account Gmail collegato: ${account}`,
  checkOk: ({ account }) =>
    `Google ha accettato il collegamento: da ora la nuova posta arriva in ${account}.`,
  checkAccountDiffers: ({ account, gmail }) =>
    `Hai effettuato l'accesso come ${account}, ma la posta è destinata a ${gmail}. Chiedi al tuo fornitore di cambiare l'indirizzo, oppure scollega e accedi come ${gmail}.`,
  checkNoImportScope:
    "Google non ha concesso il permesso di aggiungere messaggi a Gmail. Scollega, poi chiedi al tuo fornitore un nuovo link e consenti tutti i permessi.",
  checkFailed: ({ reason }) =>
    `Google non ha accettato il collegamento (${reason}). Chiedi aiuto al tuo fornitore.`,
  statusTitle: "Stato",
  lastPoll: "Ultimo controllo della vecchia casella",
  lastPollNever: "non ancora",
  lastPollFailed: ({ code }) => `non riuscito (${code}); il tuo fornitore è stato avvisato`,
  deliveredToday: "Messaggi consegnati oggi",
  delayP95: "Tempo di consegna (95% dei messaggi entro)",
  noDelay: "ancora nessun messaggio",
  quarantinedTitle: "Messaggi trattenuti",
  quarantinedNone: "Nessuno.",
  heldBecause: {
    MESSAGE_TOO_LARGE: "Troppo grande per Gmail.",
    MESSAGE_REJECTED: "Gmail ha rifiutato questo messaggio.",
    IMPORT_UNCERTAIN: "La risposta di Gmail è andata persa; il tuo fornitore verifica se è arrivato.",
    TOO_MANY_ATTEMPTS: "La consegna non è riuscita più volte.",
    VANISHED: "Il messaggio ha lasciato la vecchia casella prima di essere consegnato.",
    INVALID_UIDL: "La vecchia casella ha dato a questo messaggio un'etichetta inutilizzabile.",
  },
  heldOther: "Trattenuto per un controllo del tuo fornitore.",
  quarantinedWhatToDo:
    "Questi messaggi sono al sicuro nell'archivio e ancora nella vecchia casella. Il tuo fornitore è stato avvisato e li consegnerà o ti spiegherà il motivo.",
  disconnect: "Scollega",
  disconnectNote:
    "Scollegando, la consegna in Gmail si ferma e il permesso di pop2gmail presso Google viene revocato. La nuova posta resta nella vecchia casella.",
  disconnectedTitle: "Gmail è scollegato",
  disconnectedBody:
    "pop2gmail non consegna più in Gmail e il suo permesso presso Google è stato revocato. La nuova posta resta nella vecchia casella.",
  revokeFailed:
    "Non è stato possibile raggiungere Google per revocare il permesso; il permesso memorizzato è stato comunque cancellato. Puoi anche rimuovere pop2gmail da myaccount.google.com/permissions.",
  newLinkNeeded: "Per collegare di nuovo, chiedi al tuo fornitore un nuovo link.",
  errorTitle: "Questo link non può essere usato",
  problems: {
    malformed: "Questo link è incompleto. Copia il link intero dal messaggio che hai ricevuto.",
    tampered: "Questo link è stato modificato. Usa il link esattamente come l'hai ricevuto.",
    expired: "Questo link è scaduto. Chiedi al tuo fornitore un nuovo link.",
    "foreign-tenant":
      "Questo link appartiene a un altro servizio. Usa il link che ti ha mandato il tuo fornitore.",
    used: "Questo link è già stato usato per collegare un account Gmail. Chiedi al tuo fornitore un nuovo link.",
    "unknown-mailbox": "La casella di questo link non è più configurata. Chiedi al tuo fornitore.",
    csrf: "Il modulo è scaduto o non proviene da questa pagina. Torna indietro, ricarica la pagina e riprova.",
    "sign-in-expired": "L'accesso a Google è durato troppo o era già concluso. Apri di nuovo il tuo link.",
    denied:
      "Non hai consentito l'accesso su Google, quindi non è stato collegato nulla. Apri di nuovo il tuo link per riprovare.",
    "exchange-failed": "Google non ha completato il collegamento. Apri di nuovo il tuo link per riprovare.",
    "rate-limited": "Troppi tentativi. Attendi un minuto e riprova.",
    "not-found": "A questo indirizzo non c'è nulla.",
  },
  contactProvider: "Non è stato modificato nulla.",
};

export const STRINGS: Record<Language, Strings> = { en, it };

/**
 * The language to answer in, from an `Accept-Language` header (RFC 9110 §12.5.4): the supported
 * language with the highest weight, English when none is acceptable or the header is absent.
 */
export function pickLanguage(header: string | undefined): Language {
  let best: { lang: Language; q: number } = { lang: "en", q: 0 };
  for (const part of (header ?? "").split(",").slice(0, 20)) {
    const [range = "", ...params] = part.trim().toLowerCase().split(";");
    const qParam = params.map((p) => p.trim()).find((p) => p.startsWith("q="));
    const q = qParam === undefined ? 1 : Number(qParam.slice(2));
    const primary = range.split("-")[0];
    if ((primary === "it" || primary === "en") && Number.isFinite(q) && q > best.q)
      best = { lang: primary, q };
  }
  return best.lang;
}
