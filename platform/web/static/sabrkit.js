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
