/**
 * A tenant that wants another's data: its name is a prefix of "example" and its mailbox ids are
 * example's. The IAM proofs synthesize it beside every tenant of tenants/ and prove it reaches
 * nothing of theirs.
 */
export const HOSTILE_TENANT = {
  tenant: "exampl",
  alarmEmail: "ops@exampl.example",
  mailboxes: [
    {
      id: "info@example.com",
      pop3: {
        host: "pop.exampl.example",
        user: "info@example.com",
        passwordSecret: "pop2gmail/exampl/info-pop3",
      },
      gmail: { user: "exampl@gmail.com", credentialsSecret: "pop2gmail/exampl/google-oauth" },
    },
  ],
};
