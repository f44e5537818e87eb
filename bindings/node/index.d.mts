// The ES module entry point has the same exports as the CommonJS one.
export * from "./index.js";
