export * from "../../cli/demo/gmail-api-stand-in";
