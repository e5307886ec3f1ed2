import { describe, expect, it } from "vitest";
import { chosenScopes, scopeLayout } from "../src/screens/developer.js";

const SCOPES = ["servers:read", "servers:write", "billing:read", "billing:write", "storage:secrets", "tokens:write"]
  .map((name) => ({ name, description: name }));

describe("the token form's scopes", () => {
  it("splits areas with read and write from the special scopes", () => {
    const { areas, special } = scopeLayout(SCOPES);
    expect(areas).toEqual(["servers", "billing"]);
    expect(special.map((scope) => scope.name)).toEqual(["storage:secrets", "tokens:write"]);
  });

  it("turns the chosen levels into scope names, leaving out areas without access", () => {
    expect(chosenScopes({ servers: "write", billing: "none" }, ["tokens:write"])).toEqual(["servers:write", "tokens:write"]);
    expect(chosenScopes({ servers: "none" }, [])).toEqual([]);
  });
});
