// Loaded by mocha before any test file (.mocharc.json): tsyringe and class-validator need the
// reflect-metadata polyfill before any decorated class is evaluated.
import 'reflect-metadata';
