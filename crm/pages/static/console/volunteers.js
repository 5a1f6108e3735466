// The hours queue: one button ticks every row (the form works without it, a row at a time).
document.querySelectorAll("[data-check-all]").forEach((button) => {
  button.hidden = false;
  button.addEventListener("click", () => {
    button.form.querySelectorAll('input[type="checkbox"][name^="hours_"]').forEach((box) => { box.checked = true; });
  });
});
