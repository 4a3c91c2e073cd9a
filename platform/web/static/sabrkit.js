// sabrkit web app: small progressive enhancements (the pages work without them).
// 1. CTCAE term search: the grade list offers only the grades CTCAE v5.0 defines for the chosen term.
// 2. Scanner fields: a barcode scanner "types" the code and ends with Enter (which submits the form);
//    the text is selected on focus so the next scan replaces it.
// 3. <select data-navigate> opens the chosen page (box switcher).
(function () {
  "use strict";

  function allowedGrades(input) {
    var list = document.getElementById(input.getAttribute("list"));
    if (!list) return null;
    var wanted = input.value.trim().toLowerCase();
    for (var i = 0; i < list.options.length; i++) {
      var option = list.options[i];
      if (option.value.toLowerCase() === wanted) {
        return option.getAttribute("data-grades").split(",");
      }
    }
    return null;
  }

  function updateGrades(input) {
    var row = input.closest(".ae-row");
    var select = row && row.querySelector("select[data-grade]");
    if (!select) return;
    var grades = allowedGrades(input);
    var current = select.value;
    var choices = grades || (input.value.trim() ? [] : ["1", "2", "3", "4", "5"]);
    select.innerHTML = "";
    var blank = document.createElement("option");
    blank.value = ""; blank.textContent = grades ? "–" : (input.value.trim() ? "unknown term" : "–");
    select.appendChild(blank);
    choices.forEach(function (grade) {
      var option = document.createElement("option");
      option.value = grade; option.textContent = grade;
      if (grade === current) option.selected = true;
      select.appendChild(option);
    });
    input.setCustomValidity(input.value.trim() && !grades && !/ - other, specify/i.test(input.value)
      ? "Not a CTCAE v5.0 term of the list: pick one from the suggestions" : "");
  }

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("input[data-ctcae]").forEach(function (input) {
      input.addEventListener("input", function () { updateGrades(input); });
      input.addEventListener("change", function () { updateGrades(input); });
      if (input.value) updateGrades(input);
    });
    document.querySelectorAll("input[data-scanner]").forEach(function (input) {
      input.addEventListener("focus", function () { input.select(); });
    });
    document.querySelectorAll("select[data-navigate]").forEach(function (select) {
      select.addEventListener("change", function () { window.location.href = select.value; });
    });
  });
})();

// 4. Box map, keyboard first: the arrow keys move between positions (one tab stop for the whole
//    grid), Enter on a free position stores the chosen sample there; the typed-position field
//    selects its text on focus so a scan or "C4" + Enter replaces it.
// 5. Date rules shown while typing: a date input with a max (the registry's "no date after
//    today / the data cut-off") shows the rule next to the field as soon as a later date is typed.
(function () {
  "use strict";

  function cells(grid) {
    return Array.prototype.slice.call(grid.querySelectorAll("[data-position]"));
  }

  function moveFocus(grid, from, key) {
    var all = cells(grid);
    var position = from.getAttribute("data-position");
    var row = position.charCodeAt(0), col = parseInt(position.slice(1), 10);
    if (key === "ArrowUp") row -= 1;
    if (key === "ArrowDown") row += 1;
    if (key === "ArrowLeft") col -= 1;
    if (key === "ArrowRight") col += 1;
    var wanted = String.fromCharCode(row) + col;
    for (var i = 0; i < all.length; i++) {
      if (all[i].getAttribute("data-position") === wanted) {
        all.forEach(function (cell) { cell.setAttribute("tabindex", "-1"); });
        all[i].setAttribute("tabindex", "0");
        all[i].focus();
        return;
      }
    }
  }

  function showDateRule(input) {
    var max = input.getAttribute("max");
    var label = input.closest("label") || input.parentNode;
    var note = label.querySelector(".field-error.live");
    var bad = max && input.value && input.value > max;
    if (bad && !note) {
      note = document.createElement("span");
      note.className = "field-error live";
      note.setAttribute("role", "alert");
      note.id = "live-error-" + input.name;
      label.appendChild(note);
    }
    if (note) note.textContent = bad ? input.value + ": must not lie after today/the data cut-off (" + max +
      "); fix: enter the date it happened" : "";
    input.setCustomValidity(bad ? "A date after " + max + " is not accepted" : "");
    if (bad) input.setAttribute("aria-invalid", "true");
  }

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("[data-grid]").forEach(function (grid) {
      grid.addEventListener("keydown", function (event) {
        if (["ArrowUp", "ArrowDown", "ArrowLeft", "ArrowRight"].indexOf(event.key) < 0) return;
        var from = event.target.closest("[data-position]");
        if (!from) return;
        event.preventDefault();
        moveFocus(grid, from, event.key);
      });
    });
    document.querySelectorAll("[data-select-on-focus]").forEach(function (input) {
      input.addEventListener("focus", function () { input.select(); });
      if (document.activeElement === input) input.select();
    });
    document.querySelectorAll('input[type="date"][max], input[type="datetime-local"][max]').forEach(function (input) {
      input.addEventListener("input", function () { showDateRule(input); });
      input.addEventListener("change", function () { showDateRule(input); });
    });
  });
})();
