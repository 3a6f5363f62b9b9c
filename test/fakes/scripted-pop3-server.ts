export * from "../../cli/demo/scripted-pop3-server";
