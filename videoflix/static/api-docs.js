// Swagger UI on the document the page names; "Try it out" sends the browser's own cookies.
window.addEventListener("load", function () {
  var root = document.getElementById("swagger-ui");
  window.ui = SwaggerUIBundle({
    url: root.dataset.specUrl,
    dom_id: "#swagger-ui",
    withCredentials: true,
    deepLinking: true,
  });
});
