// ESLint (flat config): typescript-eslint's type-aware recommended rules on written code.
// Generated code (services/sidecar/gen/, clients/*/gen/), build output and tools' folders are not linted.
import eslint from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['dist/', 'node_modules/', '.tmp/', 'services/sidecar/gen/', 'clients/*/gen/', 'clients/java/target/', 'bin/'] },
  eslint.configs.recommended,
  ...tseslint.configs.recommended,
);
