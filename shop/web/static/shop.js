// Small page helpers (no framework beyond HTMX): ticking members and their amounts, confirm,
// copy, a toast after adding to the basket, and errors of HTMX requests said on the page.
(function () {
  "use strict";

  function orderForm() { return document.getElementById("order-form"); }
  function membersChanged() {
    var form = orderForm();
    if (form && window.htmx) htmx.trigger(form, "members-changed");
  }

  document.addEventListener("change", function (event) {
    var box = event.target;
    if (box.matches("input[data-select-all]")) {
      document.querySelectorAll(box.getAttribute("data-select-all")).forEach(function (c) {
        if (!c.disabled) c.checked = box.checked;
      });
      membersChanged();
    } else if (box.matches("input[name=member]")) {
      var all = document.querySelector("input[data-select-all]");
      if (all) {
        var boxes = Array.from(document.querySelectorAll("input[name=member]"));
        all.checked = boxes.length > 0 && boxes.every(function (c) { return c.checked || c.disabled; });
      }
      membersChanged();
    } else if (box.matches("input[name=split]")) {
      var list = document.getElementById("member-list");
      if (list) list.classList.toggle("custom", box.value === "custom" && box.checked);
      membersChanged();
    } else if (box.matches("input.amount")) {
      var tick = document.querySelector("input[name=member][value='" + box.getAttribute("data-member") + "']");
      if (tick && box.value.trim() && !tick.checked) tick.checked = true;  // an amount typed: that member is in
      membersChanged();
    }
  });

  document.addEventListener("submit", function (event) {
    var message = event.target.getAttribute("data-confirm");
    if (message && !window.confirm(message)) event.preventDefault();
  });

  // + − × in the basket: each change is sent through the order form, which stays on the page
  // while the basket is swapped, so a click made while another is on its way waits its turn
  // (hx-sync on the form) and is never dropped with the button it came from; the answer
  // carries the basket and the preview of that same basket.
  document.addEventListener("click", function (event) {
    var button = event.target.closest("[data-basket]");
    var form = orderForm();
    if (!button || !form || !window.htmx) return;
    event.preventDefault();
    htmx.ajax("POST", "/shop/basket", {
      source: form, target: "#basket", swap: "outerHTML",
      values: { product_id: button.getAttribute("data-product"), op: button.getAttribute("data-basket") }
    }).catch(function () { /* said by the htmx:sendError / responseError handlers below */ });
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

  // --- the toast: a short message that stays in view wherever the page is scrolled ---------
  var toastTimer = null;
  function toast(html, kind) {
    var box = document.getElementById("toast");
    if (!box) return;
    box.className = "toast" + (kind ? " " + kind : "");
    box.innerHTML = html;
    box.hidden = false;
    clearTimeout(toastTimer);
    toastTimer = setTimeout(function () { box.hidden = true; }, kind === "error" ? 8000 : 4000);
  }
  function escapeHtml(text) {
    return String(text).replace(/[&<>"']/g, function (c) {
      return { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c];
    });
  }

  // the server says what was added (HX-Trigger: basket-added): a toast and the count badge
  document.addEventListener("basket-added", function (event) {
    var d = event.detail || {};
    toast("已加入采购车：" + escapeHtml(d.title || "") + "（共 " + (d.count || 0) + " 件）<a href=\"#order-form\">去下单 ↓</a>");
  });
  function updateBadge() {
    var count = document.getElementById("basket-count");
    var badge = document.getElementById("basket-badge-count");
    if (count && badge) {
      badge.textContent = count.getAttribute("data-count");
      badge.parentElement.hidden = count.getAttribute("data-count") === "0";
    }
  }
  document.addEventListener("htmx:oobAfterSwap", updateBadge);
  document.addEventListener("htmx:afterSwap", function (event) {
    updateBadge();
    // the control that was clicked is gone (the last unit removed): keep focus in the basket
    if (event.detail.target && event.detail.target.id === "basket" && document.activeElement === document.body) {
      var heading = document.querySelector("#basket h3");
      if (heading) heading.focus();
    }
  });

  // --- an HTMX request that failed: say so, never nothing ---------------------------------
  function showError(message) {
    var flash = document.getElementById("flash");
    var html = "<div class=\"notice error\" role=\"alert\"><strong>" + escapeHtml(message) + "</strong></div>";
    if (flash) flash.innerHTML = html;
    toast(escapeHtml(message), "error");
  }
  document.addEventListener("htmx:responseError", function (event) {
    var status = event.detail.xhr ? event.detail.xhr.status : 0;
    showError(status >= 500
      ? "系统暂时无法完成请求，请稍后再试（错误 " + status + "）"
      : "请求未能完成（错误 " + status + "），请刷新页面后重试");
  });
  document.addEventListener("htmx:sendError", function () {
    showError("网络连接中断，操作未完成：请检查网络后重试");
  });
  document.addEventListener("htmx:timeout", function () {
    showError("服务器响应超时，操作可能未完成：请刷新页面查看");
  });
  document.addEventListener("DOMContentLoaded", function () {
    if (window.htmx) htmx.config.timeout = 30000;
  });
})();
