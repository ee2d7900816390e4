// Small page helpers (no framework beyond HTMX): select all members, confirm, copy.
document.addEventListener("change", function (event) {
  var box = event.target;
  if (box.matches("input[data-select-all]")) {
    var list = document.querySelectorAll(box.getAttribute("data-select-all"));
    list.forEach(function (c) { if (!c.disabled) c.checked = box.checked; });
    if (window.htmx) htmx.trigger(box.closest("form"), "members-changed");
  } else if (box.matches("input[name=member]")) {
    var all = document.querySelector("input[data-select-all]");
    if (all) {
      var boxes = Array.from(document.querySelectorAll("input[name=member]"));
      all.checked = boxes.length > 0 && boxes.every(function (c) { return c.checked || c.disabled; });
    }
    if (window.htmx) htmx.trigger(box.closest("form"), "members-changed");
  }
});

document.addEventListener("submit", function (event) {
  var message = event.target.getAttribute("data-confirm");
  if (message && !window.confirm(message)) event.preventDefault();
});

document.addEventListener("click", function (event) {
  var button = event.target.closest("[data-copy]");
  if (!button) return;
  var text = button.getAttribute("data-copy");
  if (navigator.clipboard) {
    navigator.clipboard.writeText(text).then(function () {
      var old = button.textContent;
      button.textContent = "已复制";
      setTimeout(function () { button.textContent = old; }, 1500);
    });
  }
});

// One order form submission at a time: the button says so while the order is placed.
document.addEventListener("submit", function (event) {
  var form = event.target;
  if (!form.matches("[data-once]") || event.defaultPrevented) return;
  var button = form.querySelector("button[type=submit]");
  if (button) { button.disabled = true; button.textContent = "正在提交…"; }
});
