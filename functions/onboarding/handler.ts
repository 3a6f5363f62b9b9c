import { handle } from "hono/aws-lambda";
import { createOnboardingLambdaApp } from "../../shared/adapters/lambda/onboarding-deps";

/** The onboarding pages behind the tenant's Function URL; the app is built once per container. */
export const handler = handle(createOnboardingLambdaApp(process.env));
