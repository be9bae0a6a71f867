//! Rule discovery: evolution of hole bodies combined with gradient meta-learning.
//!
//! Not built yet (issue 6). Talks to `lang` (and, later, to a backend trait) only.
