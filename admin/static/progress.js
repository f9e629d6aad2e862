// Live progress of a generation job; without JavaScript the page refreshes itself.
(function () {
  var box = document.getElementById("job");
  if (!box || box.dataset.finished === "1") return;
  var bar = document.getElementById("bar"), status = document.getElementById("status");
  function tick() {
    fetch(box.dataset.url, {credentials: "same-origin"}).then(function (r) { return r.json(); })
      .then(function (j) {
        bar.value = j.done;
        if (j.finished) { window.location.reload(); return; }
        status.textContent = "running " + j.done + " of " + j.count + " (" + j.percent + "%)";
        setTimeout(tick, 500);
      }).catch(function () { setTimeout(tick, 2000); });
  }
  setTimeout(tick, 300);
})();
