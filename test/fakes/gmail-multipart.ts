export * from "../../cli/demo/gmail-multipart";
