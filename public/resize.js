// What a page redoes when its window changes size (narrower or zoomed, other text is cut short or
// scrolls): once per animation frame, however many resize events came in it.
export function onResize(redo) {
  let asked = false;
  window.addEventListener('resize', () => {
    if (asked) return;
    asked = true;
    requestAnimationFrame(() => {
      asked = false;
      redo();
    });
  });
}
