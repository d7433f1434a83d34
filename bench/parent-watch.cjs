// Preload (`node --require bench/parent-watch.cjs …`) for the processes the bench starts: when
// the bench runner is gone (even after a SIGKILL, which leaves no chance to clean up), this
// process is re-parented; it then exits rather than be left behind as an orphan.
'use strict';
const parent = process.ppid;
const timer = setInterval(() => {
  if (process.ppid !== parent) process.exit(0);
}, 500);
timer.unref();
