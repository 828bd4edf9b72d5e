// A custom element that shows every prop it was given: the suite reads them back after resume.
export default function Tally() {
  return (
    <div id="tally" className="text-sm">
      {props.title}: {props.count} ({props.draft ?? "no draft"})
    </div>
  );
}
