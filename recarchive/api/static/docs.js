// Starts Swagger UI (served from this server, see recarchive/api/docs.py) over the
// OpenAPI document. A file of its own: the page's CSP allows no inline script.
"use strict";

window.addEventListener("DOMContentLoaded", () => {
  window.ui = window.SwaggerUIBundle({
    url: "/openapi.json",
    dom_id: "#swagger-ui",
    deepLinking: true,
    validatorUrl: null, // never ask a third party to validate the document
    presets: [window.SwaggerUIBundle.presets.apis],
    layout: "BaseLayout",
  });
});
