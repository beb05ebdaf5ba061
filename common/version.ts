import pkg from "../package.json" with { type: "json" };

/** fleetheal's version, from package.json. */
export const VERSION: string = pkg.version;
