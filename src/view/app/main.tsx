/** The dashboard's page: routes over the runs directory the server reads. */
import { render } from 'preact';
import { LocationProvider, Route, Router } from 'preact-iso';
import { RunPage } from './run-page.js';
import { ComparePage, RunsPage } from './runs-page.js';

function App() {
  return (
    <LocationProvider>
      <header class="top">
        <a class="brand" href="/">
          persona-lab view
        </a>
        <a href="/">runs</a>
        <a href="/compare">compare</a>
        <span class="live">updates live while a run writes</span>
      </header>
      <main>
        <Router>
          <Route path="/" component={RunsPage} />
          <Route path="/compare" component={ComparePage} />
          <Route path="/runs/:run" component={RunPage} />
          <Route path="/runs/:run/:tab" component={RunPage} />
          <Route default component={() => <p>Not found.</p>} />
        </Router>
      </main>
    </LocationProvider>
  );
}

render(<App />, document.getElementById('app')!);
