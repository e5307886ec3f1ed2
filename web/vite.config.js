// Vite builds the panel into dist/ (served by the gateway: index.html on every screen's
// address, hashed files under /assets/). `npm run dev` serves it with hot reload and
// forwards /api to the gateway of `make run` (GATEWAY_URL, default 127.0.0.1:8000).
import { defineConfig } from "vite";

const gateway = process.env.GATEWAY_URL || "http://127.0.0.1:8000";

export default defineConfig({
  build: {
    outDir: "dist",
    emptyOutDir: true,
    // no inline polyfill script: the panel's CSP allows scripts from its own origin only
    modulePreload: { polyfill: false },
    assetsInlineLimit: 0,
    reportCompressedSize: true,
  },
  server: { proxy: { "/api": { target: gateway, changeOrigin: false } } },
  test: { environment: "happy-dom", include: ["test/**/*.test.js"] },
});
