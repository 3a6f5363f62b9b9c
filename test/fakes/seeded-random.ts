export * from "../../cli/demo/seeded-random";
